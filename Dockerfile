# meetbot in a container: the room server, the bot and the offline speech models.
#   docker build -t meetbot .
#   docker run --rm -p 8080:8080 meetbot serve --host 0.0.0.0 --port 8080
#   docker run --rm --network host meetbot join http://127.0.0.1:8080/r/standup
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng sox \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY meetbot ./meetbot
COPY signaling ./signaling
RUN pip install --no-cache-dir '.[local]'

ENTRYPOINT ["meetbot"]
CMD ["demo"]
