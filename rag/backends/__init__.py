"""Generator backends behind the one small `rag.generation.Generator` interface.

`rag.generation.LlamaGenerator` runs a GGUF model in this process (llama.cpp); `openai_server`
talks to a model served by an OpenAI-compatible server (llama.cpp's own server, llama-cpp-python's,
vLLM, Ollama), so the generator can run on another machine while the assistant stays the same. A
manifest entry chooses the backend: a `openai:URL` source is served (rag/models.py), anything else
is a local GGUF; `rag.pipeline.load_configured_generator` builds the one the settings name."""

from rag.backends.openai_server import OpenAIServerGenerator, check_server

__all__ = ["OpenAIServerGenerator", "check_server"]
