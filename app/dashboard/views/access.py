"""Users and tokens (admin): dashboard accounts and the HTTP API's bearer tokens."""

import streamlit as st

from app import services
from app.dashboard import ui
from app.text import markdown

vigil = ui.vigil()

st.title("Users and tokens")
with ui.user_errors():
    accounts = services.list_users(vigil)
    tokens = services.list_tokens(vigil)

st.subheader("Users")
st.dataframe(accounts, width="stretch", hide_index=True)
left, right = st.columns(2)
with left.form("add_user", clear_on_submit=True):
    st.markdown("**Add a user**")
    name = st.text_input("Name", max_chars=255)
    role = st.selectbox("Role", services.ROLES)
    email = st.text_input("E-mail (matched on single sign-on)", max_chars=255)
    password = st.text_input("Password (12 characters or more; empty: single sign-on only)",
                             type="password")
    if st.form_submit_button("Add user"):
        with ui.user_errors():
            services.add_user(vigil, name, role=role, password=password or None,
                              email=email or None)
        st.session_state["access_done"] = f"Added {name} ({role})."
        st.rerun()
with right.form("disable_user", clear_on_submit=True):
    st.markdown("**Disable or enable a user** (a disabled user is signed out, their tokens "
                "stop working)")
    name = st.selectbox("User", accounts["name"].tolist(), index=None,
                        placeholder="Choose a user")
    sure = st.checkbox("Yes, change this account")
    disable, enable = st.columns(2)
    for action, clicked in (("disable", disable.form_submit_button("Disable")),
                            ("enable", enable.form_submit_button("Enable"))):
        if clicked and name and not sure:
            st.warning("Tick the box to confirm.")
        elif clicked and name:
            with ui.user_errors():
                services.disable_user(vigil, name, disabled=action == "disable")
            st.session_state["access_done"] = f"{action.capitalize()}d {name}."
            st.rerun()

st.subheader("API tokens")
st.dataframe(tokens, width="stretch", hide_index=True)
left, right = st.columns(2)
with left.form("add_token", clear_on_submit=True):
    st.markdown("**Make a token** (shown once)")
    name = st.text_input("Token name (who or what uses it)", max_chars=255)
    owner = st.selectbox("Belongs to", accounts.loc[~accounts["disabled"], "name"].tolist())
    role = st.selectbox("Role (at most the user's)", services.ROLES)
    if st.form_submit_button("Make token") and owner:
        with ui.user_errors():
            st.session_state["new_token"] = services.add_token(vigil, name, role=role,
                                                                user=owner)
        st.rerun()
with right.form("revoke_token"):
    st.markdown("**Revoke a token**")
    valid = tokens.loc[tokens["revoked_at"].isna(), "name"].tolist()
    name = st.selectbox("Token", valid)
    if st.form_submit_button("Revoke") and name:
        with ui.user_errors():
            services.revoke_token(vigil, name)
        st.session_state["access_done"] = f"Revoked {name}."
        st.rerun()

if "new_token" in st.session_state:
    st.info("The new token; copy it now, it is not shown again:")
    st.code(st.session_state.pop("new_token"), language=None)
if "access_done" in st.session_state:
    st.success(markdown(st.session_state.pop("access_done")))
