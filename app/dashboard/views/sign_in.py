"""Sign in; or, on the very first start (no account yet), create the administrator."""

import streamlit as st

from app import services
from app.dashboard import ui
from app.errors import SignInError
from app.text import markdown

vigil = ui.application()

with ui.user_errors():
    first_start = services.needs_first_admin(vigil)

if first_start:
    st.title("Create the administrator")
    st.caption("No account exists yet. The first one administers Vigil: it adds the "
               "other users (`vigil users add` does too). This form is gone once it exists.")
    with st.form("first_admin"):
        name = st.text_input("Name", max_chars=255)
        password = st.text_input("Password (12 characters or more)", type="password")
        again = st.text_input("Password again", type="password")
        if st.form_submit_button("Create and sign in", type="primary"):
            if password != again:
                st.error("The two passwords differ.")
            else:
                with ui.user_errors():
                    ui.sign_in(services.create_first_admin(vigil, name, password))
                st.rerun()
    st.stop()

st.title("Sign in to Vigil")
if ui.single_sign_on():
    email = ui.sso_identity()
    if email:  # the provider knows them; Vigil does not
        st.error(f"{markdown(email)} has no Vigil account and the identity provider names "
                 "no role for it: ask an administrator to add you.", icon=":material/lock:")
        if st.button("Sign out of single sign-on"):
            st.logout()
    elif st.button("Sign in with single sign-on", type="primary",
                   icon=":material/passkey:"):
        st.login()
    st.caption("Or with a name and password:")
with st.form("sign_in"):
    name = st.text_input("Name", max_chars=255)
    password = st.text_input("Password", type="password")
    if st.form_submit_button("Sign in", type="primary"):
        try:
            ui.sign_in(services.sign_in(vigil, name, password))
        except SignInError as exc:
            st.error(str(exc), icon=":material/lock:")
        else:
            st.rerun()
