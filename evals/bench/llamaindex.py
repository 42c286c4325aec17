"""LlamaIndex measured in its own virtualenv (`--llamaindex PYTHON`), on the same data and model, in a
subprocess: the scripts it runs and how their one-line JSON answers come back."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, cast

from evals.bench.data import (
    log,
)

LLAMAINDEX_TIMEOUT_S = 3600


# --- LlamaIndex, in its own environment ---------------------------------------------------------------

LLAMA_INGEST = r"""
import json, sys, time, logging
cfg = json.loads(sys.argv[1])
logging.disable(logging.WARNING)
from llama_index.core import SimpleDirectoryReader
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from tokenizers import Tokenizer
tok = Tokenizer.from_file(cfg["model"] + "/tokenizer.json")
tok.no_padding()
tok.no_truncation()
embed = HuggingFaceEmbedding(model_name=cfg["model"], device="cpu", embed_batch_size=cfg["batch"])
embed.get_text_embedding_batch(["warm up"] * cfg["batch"])
splitter = SentenceSplitter(chunk_size=cfg["max_tokens"], chunk_overlap=cfg["overlap"],
                            tokenizer=lambda text: tok.encode(text, add_special_tokens=False).ids)
started = time.perf_counter()
reader = SimpleDirectoryReader(cfg["corpus"], recursive=True, raise_on_error=False)
documents = reader.load_data()
parsed = time.perf_counter()
nodes = IngestionPipeline(transformations=[splitter, embed]).run(documents=documents)
done = time.perf_counter()
loaded = {d.metadata.get("file_path") for d in documents}
found = [str(p) for p in reader.input_files]
print(json.dumps({"chunks": len(nodes), "seconds": done - started, "parse_seconds": parsed - started,
                  "files": len(found), "skipped": sorted(p for p in found if p not in loaded)}))
"""

LLAMA_RETRIEVE = r"""
import json, sys, time, logging
import numpy as np
cfg = json.loads(sys.argv[1])
logging.disable(logging.WARNING)
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
vectors = np.load(cfg["vectors"])
with open(cfg["nodes"], encoding="utf-8") as handle:
    rows = [json.loads(line) for line in handle]
embed = HuggingFaceEmbedding(model_name=cfg["model"], device="cpu")
nodes = [TextNode(id_=r["id"], text=r["text"], metadata={"source": r["source"]}, embedding=v.tolist())
         for r, v in zip(rows, vectors)]
del vectors
started = time.perf_counter()
index = VectorStoreIndex(nodes, embed_model=embed)
built = time.perf_counter() - started
retriever = index.as_retriever(similarity_top_k=cfg["k"])
for question in cfg["questions"][:3]:
    retriever.retrieve(question)
latencies, sources = [], []
for question in cfg["questions"]:
    started = time.perf_counter()
    hits = retriever.retrieve(question)
    latencies.append(time.perf_counter() - started)
    sources.append([hit.node.metadata["source"] for hit in hits])
print(json.dumps({"build_seconds": built, "latencies": latencies, "sources": sources}))
"""


def run_llamaindex(python: str, script: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run one of the scripts above with `python`; its last stdout line is its JSON answer."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    done = subprocess.run(
        [python, "-c", script, json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=LLAMAINDEX_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-600:]}")
    return cast(dict[str, Any], json.loads(done.stdout.strip().splitlines()[-1]))


def llamaindex_python(option: str | None) -> str | None:
    """`--llamaindex PYTHON`, checked to import llama_index; None when not given or not usable."""
    if not option:
        return None
    probe = "import llama_index.core, llama_index.readers.file, llama_index.embeddings.huggingface"
    try:
        subprocess.run([option, "-c", probe], check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as error:
        log(f"--llamaindex {option}: not usable ({type(error).__name__}); LlamaIndex skipped")
        return None
    return option
