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
CMD ["sh", "-c", "python manage.py migrate --noinput && gunicorn agentstats.wsgi --bind 0.0.0.0:8000 --workers 2 --timeout 30"]
