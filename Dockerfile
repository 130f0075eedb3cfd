# DORA Insights service image: `insights init` (migrations) then `insights serve` (API + scheduler).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# git: the localgit collector reads clones with `git log`; nothing else is needed at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin insights
WORKDIR /app
COPY pyproject.toml README.md ./
COPY insights ./insights
RUN pip install . && rm -rf /root/.cache
USER 10001
ENV INSIGHTS_REPORTS_DIR=/home/insights/reports \
    INSIGHTS_CONFIG=/config/insights.toml
RUN mkdir -p /home/insights/reports
EXPOSE 8000
# No curl in the slim image: the health check uses the Python standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
# SIGTERM lets the scheduler finish its current job and release the leader lock.
STOPSIGNAL SIGTERM
CMD ["sh", "-c", "insights init && exec insights serve --host 0.0.0.0 --port 8000"]
