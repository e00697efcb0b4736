"""The text files of a build context: Dockerfile, install.sh, .dockerignore.

``install.sh`` holds every install step, so the image and a plain virtual environment
(``tests/deploy``) install the same way: the exact pins with ``--no-deps``, torch for the
image's accelerator, ginpipe, then ``pip check``.
"""

from __future__ import annotations

import shlex

PORT = 8000
APP = "/app"
# The serving command as the image runs it; any other ginpipe command replaces it
# (`docker run IMAGE predict /app/run /data/x.csv -o /data/out.csv`).
SERVE_ARGS = ("serve", f"{APP}/run", "--host", "0.0.0.0", "--port", str(PORT))
MIRROR_VARIABLES = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_RETRIES",
    "PIP_CERT",
)


def install_script(ginpipe_spec: str) -> str:
    unset = " ".join(MIRROR_VARIABLES)
    return f"""#!/bin/sh
# Installs the run's environment with the python on PATH: the exact pins of its lock
# (--no-deps: nothing unpinned comes in), torch for this image's accelerator, then ginpipe.
# pip resolves only torch's accelerator packages and ginpipe's serving extra, each held to
# the pins by -c; pip check ends it. Works the same in an image and in a fresh venv.
set -eu
cd "$(dirname "$0")"
for name in {unset}; do  # build arguments left empty are not pip settings
  eval "value=\\${{$name:-}}"
  if [ -z "$value" ]; then unset "$name"; fi
done
python -m pip install --no-deps -r requirements.txt
python -m pip install -c requirements.txt -r torch.txt
python -m pip install -c requirements.txt {shlex.quote(ginpipe_spec)}
python -m pip check
"""


def dockerfile(python: str, run_name: str) -> str:
    args = ", ".join(f'"{a}"' for a in SERVE_ARGS)
    mirror = "\n".join(f"ARG {name}" for name in MIRROR_VARIABLES)
    return f"""# The run {run_name}, served by `ginpipe serve` (docs/deploy.md).
#   docker build -t ginpipe-run .
#   docker run --rm -p {PORT}:{PORT} ginpipe-run
# Python {python}, as the run had it; --build-arg BASE=... for another base image.
ARG BASE=python:{python}-slim
FROM ${{BASE}}

# Behind a mirror, a proxy or offline: --build-arg PIP_INDEX_URL=... (or PIP_EXTRA_INDEX_URL,
# PIP_FIND_LINKS or PIP_CERT with the file or folder mounted into the build, PIP_RETRIES).
{mirror}
ENV PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1

WORKDIR {APP}
COPY install.sh requirements.txt torch.txt ./
COPY wheels/ wheels/
RUN sh install.sh

# The run's own modules (importable by their names) and what load_run and predict read,
# owned by the user that serves them (a run's files may be readable by their owner only).
RUN useradd --create-home --uid 10001 ginpipe
COPY --chown=ginpipe:ginpipe code/ code/
COPY --chown=ginpipe:ginpipe run/ run/
ENV PYTHONPATH={APP}/code \\
    MPLCONFIGDIR=/tmp/matplotlib
USER ginpipe

EXPOSE {PORT}
ENTRYPOINT ["ginpipe"]
CMD [{args}]
"""


DOCKERIGNORE = """# Only what the Dockerfile copies goes to the engine.
**/__pycache__
**/*.pyc
**/.tmp-*
.git
context.json
"""
