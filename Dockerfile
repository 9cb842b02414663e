# Vigil's dashboard: migrations first, the administrator from VIGIL_ADMIN_USER and
# VIGIL_ADMIN_PASSWORD when no account exists, then Streamlit on port 8501.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY pyproject.toml README.md ./
COPY app ./app
COPY detection ./detection
COPY storage ./storage
COPY alerts ./alerts
COPY sample_data ./sample_data
COPY .streamlit ./.streamlit
RUN pip install --no-deps . && useradd --create-home vigil && mkdir -p data && chown vigil data
USER vigil

EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
CMD ["sh", "-c", "vigil db upgrade && vigil users bootstrap && streamlit run app/dashboard/server.py --server.address=0.0.0.0 --server.port=8501"]
