wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"session_id":"e2085be5-9137-4e4e-80b5-f1ffddc25423","category":"page interaction","name":"pageview","data":{"host":"www.consumeraffairs.com","path":"/"},"timestamp":"2021-01-01 09:15:27.243860"}'
