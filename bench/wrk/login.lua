-- kura password sign-in: POST /v1/auth/login of a tenant user (no TOTP), one
-- Argon2id verification with the server's parameters and a session insert per
-- request. Username, password and tenant come from the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"username":"%s","password":"%s","tenant":"bench"}',
  assert(os.getenv("BENCH_USER"), "BENCH_USER not set"),
  assert(os.getenv("BENCH_PASSWORD"), "BENCH_PASSWORD not set"))
