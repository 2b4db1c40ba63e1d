-- kura GET of one 300-byte record with a real API key: token lookup,
-- permission check, AES-256-GCM decrypt and JSON serialisation per request.
-- The record's URL is wrk's URL argument.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_KEY"), "BENCH_KEY not set")
