FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY . .
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu . \
    && python manage.py collectstatic --noinput
ENV DEBUG=0
EXPOSE 8000
CMD ["gunicorn", "perfboard.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
