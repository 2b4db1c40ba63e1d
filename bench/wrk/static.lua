-- nginx ceiling: GET of a static 300-byte JSON file, with the same
-- Authorization header kura's requests carry (so request sizes match).
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "")
