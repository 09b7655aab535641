-- POST /api/v1/sms/send with a JWT, X-App-ID and a unique transaction_id per request.
--
--   wrk -t2 -c50 -d600s -s bench/wrk/send.lua http://127.0.0.1:8080 -- \
--       <token> <app_id> <total_sends> <threads> <run_id> <esme> [done_dir]
--
-- Each thread sends its share of <total_sends> and then stops, so exactly that many
-- messages are sent (wrk has no request-count option). wrk itself still runs until
-- -d or SIGINT: a thread that is done creates <done_dir>/thread-<n>, and
-- bench/e2e_load.py sends SIGINT once every thread is done, so wrk's duration is
-- the time the sends took (plus a few ms of polling). A connection that asks for a
-- request after its thread's share is used up waits a second (delay()) and then sends
-- GET /healthy (cheap, creates no message) until the thread's last answers are in.
-- Every send asks for a receipt (the gateway default) and every answer waits for its
-- database commit. `done` prints one JSON line that bench/e2e_load.py parses.
--
-- wrk calls request() once on the first thread before any connection exists, to check
-- the script (script_verify_request); that request is never sent, so the first thread
-- issues one more than its share.

local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local token = args[1]
  app_id = args[2]
  local total = tonumber(args[3])
  local nthreads = tonumber(args[4])
  run_id = args[5] or tostring(os.time())
  esme = args[6] or "1"
  done_dir = args[7]
  finished = false
  quota = math.floor(total / nthreads)
  if id <= total % nthreads then
    quota = quota + 1
  end
  issue = quota
  if id == 1 then
    issue = quota + 1  -- see script_verify_request above
  end
  sent = 0        -- sends issued by this thread
  answered = 0    -- send answers received
  n4xx = 0
  n5xx = 0
  nother = 0      -- 1xx/3xx: should never happen
  sample = ""     -- the first non-2xx answer, for the report
  healthy = 0     -- tail requests that were GET /healthy
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["X-App-ID"] = app_id
  wrk.headers["Content-Type"] = "application/json"
  healthy_req = wrk.format("GET", "/healthy", {}, nil)
end

function delay()
  if sent < issue then
    return 0
  end
  return 1000
end

function request()
  if sent < issue then
    sent = sent + 1
    local body = string.format(
      '{"esme":%s,"source":"Bench","destination":"+4477%d%06d",' ..
      '"message":"Load test message %d of thread %d, run %s",' ..
      '"transaction_id":"%s-%d-%d"}',
      esme, id, sent, sent, id, run_id, run_id, id, sent)
    return wrk.format("POST", "/api/v1/sms/send", nil, body)
  end
  return healthy_req
end

function response(status, headers, body)
  -- /healthy answers {"status":"ok"}; a send answers with message_id or error.
  if string.find(body, '"message_id"', 1, true) or string.find(body, '"error"', 1, true) then
    answered = answered + 1
    if status < 200 or status > 299 then
      if status >= 500 then
        n5xx = n5xx + 1
      elseif status >= 400 then
        n4xx = n4xx + 1
      else
        nother = nother + 1
      end
      if sample == "" then
        sample = status .. " " .. string.sub(body, 1, 200)
      end
    end
  else
    healthy = healthy + 1
  end
  if answered >= quota and not finished then
    finished = true
    if done_dir then
      local f = io.open(done_dir .. "/thread-" .. id, "w")
      if f then
        f:close()
      end
    end
    wrk.thread:stop()
  end
end

local function json_string(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, requests)
  local answered_all, n4, n5, no, healthy_all, samples = 0, 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    answered_all = answered_all + t:get("answered")
    n4 = n4 + t:get("n4xx")
    n5 = n5 + t:get("n5xx")
    no = no + t:get("nother")
    healthy_all = healthy_all + t:get("healthy")
    if samples == "" then samples = t:get("sample") end
  end
  io.write(string.format(
    '{"wrk":true,"duration_us":%d,"requests":%d,"answered_sends":%d,' ..
    '"non2xx_4xx":%d,"non2xx_5xx":%d,"non2xx_other":%d,"healthy_tail":%d,' ..
    '"socket_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"sample":%s}\n',
    summary.duration, summary.requests, answered_all, n4, n5, no, healthy_all,
    summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean, json_string(samples)))
end
