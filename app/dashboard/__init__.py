"""Front door: the Streamlit dashboard (`streamlit run app/dashboard/main.py`): the page
router, one module a page in ``views/``, the session and sign-in helpers (``ui``) and the
Altair charts. Pages call the use cases in :mod:`app.services`; nothing else imports this."""
