FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --home /app arbitra && ARBITRA_STATE_DIR=/tmp/arbitra python manage.py collectstatic --noinput
USER arbitra
EXPOSE 8000
CMD ["gunicorn", "arbitra.wsgi:application", "--bind", "0.0.0.0:8000"]
