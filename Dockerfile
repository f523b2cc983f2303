# hytrace image: the API and the Celery worker run from the same image, from the repo root
# (the `trace` package shadows a stdlib module, so everything starts with `python -m`).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first (a layer that survives code changes); the project runs from /app.
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir .
COPY . .
EXPOSE 8000
# uvicorn believes X-Forwarded-For from FORWARDED_ALLOW_IPS, else from 127.0.0.1: empty, it believes
# nobody until the reverse proxy's address is set (docker run -e FORWARDED_ALLOW_IPS=...).
ENV FORWARDED_ALLOW_IPS=""
CMD ["python", "-m", "uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
