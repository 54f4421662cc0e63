"""`qwqrl rm serve`: one reward model behind HTTP, for runs whose trainer nodes have no room for it.

Multi-node runs put the RM on its own GPU or node; trainers reach it with
`RemoteRewardModel(url)`, which has the local scorer's interface. The server does what the local
scorer does (answer extraction, length-sorted batches); requests take turns on the model.

    POST /v1/score {"items": [{"prompt": str | messages, "completion": str}]}
        -> {"scores": [float], "raw": [float | null]}
    GET  /healthz -> {"status": "ok", "model": str, "normalize": str}

`scores` are normalized with the server's `--normalize` over the request; `raw` holds the RM's
logits (null: unfinished) so a client can normalize its own way.

    qwqrl rm serve --model runs/rm --host 127.0.0.1 --port 8100 --device cuda:0
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from qwqrl.verifiers.reward_model import RewardModelScorer, normalize_scores


class Item(BaseModel):
    prompt: str | list[dict[str, Any]]
    completion: str


class ScoreRequest(BaseModel):
    items: list[Item]


class ScoreResponse(BaseModel):
    scores: list[float]
    raw: list[float | None]


def build_app(scorer: RewardModelScorer, name: str) -> FastAPI:
    """The HTTP app over `scorer`; `name` is what /healthz reports as the model."""
    app = FastAPI(title="qwqrl reward model")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "model": name, "normalize": scorer.normalize}

    @app.post("/v1/score")
    def score(request: ScoreRequest) -> ScoreResponse:  # sync: FastAPI runs it in a thread
        raw = scorer.raw_scores([i.prompt for i in request.items],
                                [i.completion for i in request.items])
        return ScoreResponse(scores=normalize_scores(raw, scorer.normalize), raw=raw)

    return app


def serve(scorer: RewardModelScorer, name: str, host: str, port: int) -> None:
    """Serve until interrupted."""
    import uvicorn

    uvicorn.run(build_app(scorer, name), host=host, port=port, log_level="warning")
