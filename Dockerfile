# DORA Insights service image: `insights serve` (API + scheduler) on a slim Python base.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 insights
WORKDIR /app
COPY pyproject.toml README.md ./
COPY insights ./insights
RUN pip install .
USER insights
ENV INSIGHTS_REPORTS_DIR=/home/insights/reports
EXPOSE 8000
CMD ["sh", "-c", "insights init && insights serve --host 0.0.0.0 --port 8000"]
