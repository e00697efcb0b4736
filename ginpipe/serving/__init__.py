"""``ginpipe serve``: runs over HTTP, with dynamic batching, on FastAPI and uvicorn.

Why not LitServe (Lightning's server, tried at 0.2.19 first): it fell short of what
``serve`` must do.

* SIGTERM does not drain. LitServe installs no SIGTERM handler: the signal ends its main
  process at once and leaves the forked uvicorn process and the spawned inference worker
  running as orphans that keep the port; only Ctrl-C takes its graceful path, and that
  path closes the response transport before the HTTP servers finish.
* A file's bytes are not an accepted body: every body that is not a form is parsed as
  JSON, so a PNG or WAV sent as ``application/octet-stream`` is a 500 "Internal server
  error" rather than a prediction or a 4xx naming the problem.
* ``--host`` may only be ``0.0.0.0``, ``127.0.0.1`` or ``::`` and ``--port`` at least 1024.
* Each request crosses processes twice (a multiprocessing manager queue to a spawned
  worker and back), and each worker process imports torch and loads the model again.

What it offers (batching, workers, a FastAPI app) is small here: ``batching.py`` is the
queue, uvicorn gives the graceful shutdown (stop accepting, finish the requests in flight),
and one process holds each run's model once, its batches computed in threads.

Modules: ``checks`` (before anything loads), ``server`` (start, ready, drain),
``listener`` (uvicorn's server with our ready/stop hooks), ``route`` (the prediction
paths, plain ASGI), ``app`` (the other endpoints, errors), ``payload`` (request body ->
model inputs), ``waves`` (audio: decoded per request, featurized per batch), ``batching``
(the queue), ``served`` (one run: model, batchers, info), ``metrics`` (Prometheus),
``errors`` (4xx as one line).
"""
