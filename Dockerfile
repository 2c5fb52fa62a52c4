FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY agentstats ./agentstats
COPY marketplace ./marketplace
COPY rmq ./rmq
COPY manage.py ./
RUN pip install --no-cache-dir -c constraints.txt . \
    && DEBUG=true python manage.py collectstatic --noinput
EXPOSE 8000
# Liveness: the process serves /healthz (the slim image has no curl; python it has). The
# probe paths are exempt from the HTTPS redirect, so plain HTTP on the app's port works.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# Threaded workers (agentstats/gunicorn_conf.py: GUNICORN_WORKERS, GUNICORN_THREADS): a
# request waiting on the broker never holds up the agents' database-only calls.
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn -c python:agentstats.gunicorn_conf agentstats.wsgi --bind 0.0.0.0:8000"]
