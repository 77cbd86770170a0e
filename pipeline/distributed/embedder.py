"""A shared embedder: one ReID model for every camera worker, batching their crops together.

With ``--shared-embedder`` the Ray engine starts one :class:`EmbedService` actor (on a GPU when the cluster
has one) instead of a model per worker. Workers call it through :class:`RemoteEmbedder`, a drop-in for a
local embedder. Requests that arrive within ``wait_s`` of each other (from any worker) are embedded in one
call of at most ``max_batch`` crops: on a GPU one large batch costs little more than a small one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from configs.schema import PipelineConfig
from pipeline.embed import build_embedder


class EmbedService:
    """See the module docstring (a Ray async actor: its methods run on one event loop)."""

    def __init__(self, config: PipelineConfig, wait_s: float = 0.004, max_batch: int = 256) -> None:
        if wait_s < 0 or max_batch < 1:
            raise ValueError(f"expected wait_s >= 0 and max_batch >= 1, got {wait_s}, {max_batch}")
        self.embedder = build_embedder(config)
        if self.embedder is None:
            raise ValueError("EmbedService: expected a config with embed set (ReID on), got embed: null")
        self.wait_s, self.max_batch = wait_s, max_batch
        self._pending: list[tuple[list[np.ndarray], asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self.stats = {"requests": 0, "crops": 0, "model_calls": 0}

    def embedding_dim(self) -> int:
        return int(self.embedder.embedding_dim)

    def counters(self) -> dict[str, Any]:
        calls = max(self.stats["model_calls"], 1)
        return {**self.stats, "requests_per_model_call": round(self.stats["requests"] / calls, 2),
                "crops_per_model_call": round(self.stats["crops"] / calls, 2)}  # fmt: skip

    async def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, D) float32 embeddings of ``crops``, computed together with other workers' pending crops."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((crops, future))
        self.stats["requests"] += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())
        return await future

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.wait_s)  # let the other workers' requests arrive
        while self._pending:
            batch, size = [], 0
            while self._pending and (not batch or size + len(self._pending[0][0]) <= self.max_batch):
                request = self._pending.pop(0)
                batch.append(request)
                size += len(request[0])
            crops = [c for request, _ in batch for c in request]
            try:
                out = await asyncio.get_running_loop().run_in_executor(None, self._run, crops)
            except Exception as exc:  # every waiting worker gets the error
                for _, future in batch:
                    future.set_exception(exc)
                continue
            start = 0
            for request, future in batch:
                future.set_result(out[start : start + len(request)])
                start += len(request)

    def _run(self, crops: list[np.ndarray]) -> np.ndarray:
        self.stats["model_calls"] += 1
        self.stats["crops"] += len(crops)
        if not crops:
            return np.zeros((0, self.embedding_dim()), np.float32)
        return np.asarray(self.embedder(crops), dtype=np.float32)


class RemoteEmbedder:
    """A worker's embedder that is the shared :class:`EmbedService` actor ``handle``."""

    def __init__(self, handle: Any, embedding_dim: int) -> None:
        self.handle, self.embedding_dim = handle, int(embedding_dim)

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        import ray

        return ray.get(self.handle.embed.remote(list(crops)))
