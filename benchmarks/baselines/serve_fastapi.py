"""A hand-written FastAPI + uvicorn endpoint: the baseline of the serve benchmark.

What a user writes without ``ginpipe serve``: rebuild the ResNet from the arguments in
``model.json``, load the weights, and answer ``POST /predict`` one request at a time (no
batching): a JSON list of the item's numbers put
through the run's fitted feature scaling, or a WAV file's bytes decoded with soundfile
(mono, crop or pad to the trained length), the run's log-mel and train mean/std. Softmax;
the answer is ``{"predicted_class": ..., "probabilities": {...}}`` as ``ginpipe serve``
gives. ``GET /health`` answers once the model is loaded.

The model runs on one worker thread, not on the event loop's: on this shared 2-core machine
under load, torch's OpenMP pool called from the main thread took 85-114 ms per one-item
forward against 2-3 ms from a worker thread (same process, same 2 threads), which would
measure that effect instead of batching. ``ginpipe serve`` runs its batches on a worker
thread too.

    python benchmarks/baselines/serve_fastapi.py --run RUN_DIR --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from safetensors.torch import load_file

from ginpipe.tasks.bundle import read_bundle
from ginpipe.tasks.data.audio_features import LogMel
from ginpipe.tasks.models.resnet import ResNet
from ginpipe.tasks.preprocessing import FeaturePreprocessing


def build(run: Path) -> FastAPI:
    info = json.loads((run / "model" / "model.json").read_text())
    network = ResNet(**info["network"]["constructor"])
    network.load_state_dict(load_file(str(run / "model" / "weights.safetensors")))
    network.eval()
    classes = info["classes"]
    decoded = info["input"].get("decoded")
    if decoded:
        decoder = decoded["decoder"]["kwargs"]
        samples = int(decoder["sample_rate"] * decoder["duration"])
        logmel = LogMel(**decoded["transform"]["kwargs"])
        mean, std = (
            np.float32(decoded["normalize"]["mean"]),
            np.float32(decoded["normalize"]["std"]),
        )
    else:  # the fitted scaling of the features run (its saved scikit-learn transforms)
        bundle = read_bundle(run)
        scaling = FeaturePreprocessing.from_spec(bundle.preprocessing_value, bundle.input_shape)

    def model_input(body: bytes) -> np.ndarray:
        if decoded:
            audio, _ = soundfile.read(io.BytesIO(body), dtype="float32", always_2d=True)
            mono = audio.mean(axis=1)[:samples]
            mono = np.pad(mono, (0, samples - len(mono)))
            features = logmel(mono[np.newaxis]).astype(np.float32)
            return ((features - mean) / std)[np.newaxis]
        row = np.asarray(json.loads(body), dtype=np.float32).reshape(1, *scaling.raw_shape)
        return scaling(row)

    def infer(body: bytes) -> str:
        x = torch.from_numpy(model_input(body))
        with torch.inference_mode():
            probabilities = torch.softmax(network(x), dim=1).double().numpy()[0]
        answer = {
            "predicted_class": classes[int(probabilities.argmax())],
            "probabilities": {
                name: float(p) for name, p in zip(classes, probabilities, strict=True)
            },
        }
        return json.dumps(answer)

    app = FastAPI()
    one_at_a_time = ThreadPoolExecutor(1)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        body = await request.body()
        answer = await asyncio.get_running_loop().run_in_executor(one_at_a_time, infer, body)
        return Response(answer, media_type="application/json")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build(args.run), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
