// An OpenID Connect provider on loopback for the single sign-on browser test.
//   node provider.js PORT CLIENT_SECRET REDIRECT_URI
// Its development sign-in form takes any name: the account "NAME" has the e-mail
// NAME@example.org and, when NAME starts with "admin", the claim vigil_role=admin.
import Provider from "oidc-provider";

const [port, secret, redirect] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: "vigil",
    client_secret: secret,
    redirect_uris: [redirect],
    post_logout_redirect_uris: [redirect], // Streamlit's st.logout comes back here
    grant_types: ["authorization_code"],
    response_types: ["code"],
  }],
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "vigil_role"] },
  scopes: ["openid", "email", "profile"],
  conformIdTokenClaims: false, // put the claims into the ID token, which Streamlit reads
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const claims = { sub: id, email: `${id}@example.org`, email_verified: true, name: id };
        if (id.startsWith("admin")) claims.vigil_role = "admin";
        return claims;
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => false },
});
provider.proxy = false;
provider.listen(Number(port), "127.0.0.1", () => console.log(`listening ${issuer}`));
