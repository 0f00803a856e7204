-- The request mix of bench/load.py, for wrk: wrk -s bench/load/mix.lua URL -- DATA.lua PHASE
--
-- DATA.lua (written by bench/load.py) returns the API keys, ticket references, customers, agents
-- and search queries to draw from. PHASE prefixes every id this run writes (Idempotency-Key,
-- external ids), so phases never collide. Each request uses the next key of the list
-- (one key per simulated integration), so no key passes its throttle budget.
--
--   40%  GET  /api/v1/tickets/?<one of the filter sets below>
--   20%  GET  /api/v1/tickets/{ref}/
--   10%  GET  /api/v1/tickets/{ref}/messages/
--   10%  GET  /api/v1/kb/search?q=<one of bench/kb_search/queries.json>
--    5%  POST /api/v1/tickets/{open ref}/messages/   a customer message
--    5%  POST /api/v1/tickets/{open ref}/messages/   an agent's reply (as agentNN)
--    5%  POST /api/v1/messages/ingest                a chat message: 2/5 a new conversation (201),
--                                                    3/5 the next message of one this thread began
--    5%  POST /api/v1/tickets/                       a new ticket (half new customers, half known)
--
-- Every POST carries an Idempotency-Key. done() prints one "LOAD ..." line per figure for
-- bench/load.py: wrk's summary, latency percentiles, socket errors and the responses counted by
-- status and kind (the kind read from the body: ticket, message, ingest, list, error code).

local counter = 0
local conversations = 0
local data, phase, prefix

function setup(thread)
  threads = threads or {}
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  data = dofile(args[1])
  phase = args[2]
  prefix = "load-" .. phase .. "-" .. tid .. "-"
  math.randomseed(os.time() * 97 + tid * 7919)
  counts = {}
end

local function pick(list)
  return list[math.random(#list)]
end

local function headers(post, id)
  counter = counter + 1
  local h = {["Authorization"] = "Bearer " .. data.keys[(counter + tid) % #data.keys + 1]}
  if post then
    h["Content-Type"] = "application/json"
    h["Idempotency-Key"] = id
  end
  return h
end

local LISTS = {
  function() return "" end,
  function() return "?status=open" end,
  function() return "?status=new&status=open&team=" .. pick(data.teams) end,
  function() return "?team=" .. pick(data.teams) .. "&priority=urgent" end,
  function() return "?channel=wechat&status=pending" end,
  function() return "?assignee=" .. pick(data.agent_ids) end,
  function() return "?customer=" .. pick(data.customers) end,
  function() return "?category=refund&page_size=20" end,
  function() return "?ordering=updated_at&updated_after=" .. data.updated_after .. "&page_size=100" end,
  function() return "?q=" .. data.subject_word end,
  function() return "?sla_breached=true&status=open" end,
}

local CUSTOMER_SAYS = {"请问我的问题处理得怎么样了？", "还没有收到退款，麻烦再看一下", "好的，谢谢",
  "I have not heard back yet, any update?", "照片已经上传了，请查收"}
local AGENT_SAYS = {"您好，已为您查询，预计明天送达。", "已为您提交退款申请，1-3 个工作日到账。",
  "Thanks for waiting, we have escalated this to the warehouse.", "请您提供一下订单号，我帮您查询。"}
local SUBJECTS = {"包裹破损", "退款没到账", "手环连接失败", "发票怎么开", "Order not delivered", "优惠券无法使用"}
local CATEGORIES = {"delivery", "refund", "returns", "login", "coupon", "product_features", "billing"}
local CHANNELS = {"web_chat", "app_chat", "wechat", "email", "phone"}
local PRIORITIES = {"low", "normal", "normal", "normal", "high", "urgent"}

request = function()
  local r = math.random(100)
  local id = prefix .. (counter + 1)
  if r <= 40 then
    return wrk.format("GET", "/api/v1/tickets/" .. pick(LISTS)(), headers(false))
  elseif r <= 60 then
    return wrk.format("GET", "/api/v1/tickets/" .. pick(data.all) .. "/", headers(false))
  elseif r <= 70 then
    return wrk.format("GET", "/api/v1/tickets/" .. pick(data.all) .. "/messages/", headers(false))
  elseif r <= 80 then
    return wrk.format("GET", "/api/v1/kb/search?q=" .. pick(data.queries) .. "&limit=10", headers(false))
  elseif r <= 85 then
    local body = '{"author":"customer","body":"' .. pick(CUSTOMER_SAYS) .. '","external_id":"' .. id .. '"}'
    return wrk.format("POST", "/api/v1/tickets/" .. pick(data.open) .. "/messages/", headers(true, id), body)
  elseif r <= 90 then
    local body = '{"author":"agent","agent":"' .. pick(data.agents) .. '","body":"' .. pick(AGENT_SAYS) ..
      '","external_id":"' .. id .. '"}'
    return wrk.format("POST", "/api/v1/tickets/" .. pick(data.open) .. "/messages/", headers(true, id), body)
  elseif r <= 95 then
    local conversation
    if conversations == 0 or math.random(5) <= 2 then
      conversations = conversations + 1
      conversation = conversations
    else
      conversation = math.random(conversations)
    end
    local body = '{"channel":"wechat","conversation_id":"' .. prefix .. "c" .. conversation .. '",' ..
      '"customer":{"external_id":"' .. prefix .. "wx" .. conversation .. '","name":"微信用户"},' ..
      '"message":{"body":"' .. pick(CUSTOMER_SAYS) .. '","external_id":"' .. id .. '"}}'
    return wrk.format("POST", "/api/v1/messages/ingest", headers(true, id), body)
  else
    local customer
    if math.random(2) == 1 then
      customer = '{"id":' .. pick(data.customers) .. '}'
    else
      customer = '{"external_id":"' .. id .. '","name":"压测客户","phone":"139' ..
        string.format("%08d", math.random(0, 99999999)) .. '"}'
    end
    local body = '{"subject":"' .. pick(SUBJECTS) .. '","channel":"' .. pick(CHANNELS) .. '","category":"' ..
      pick(CATEGORIES) .. '","priority":"' .. pick(PRIORITIES) .. '","external_id":"' .. id .. '",' ..
      '"customer":' .. customer .. ',"message":{"body":"' .. pick(CUSTOMER_SAYS) .. '","external_id":"' .. id .. '"}}'
    return wrk.format("POST", "/api/v1/tickets/", headers(true, id), body)
  end
end

local KINDS = {["{\"reference\""] = "ticket", ["{\"id\":"] = "message", ["{\"ticket\":"] = "ingest",
  ["{\"next\":"] = "list", ["{\"results"] = "list", ["{\"error\":"] = "error"}

response = function(status, headers, body)
  local kind = "other"
  if body then
    for start, name in pairs(KINDS) do
      if body:sub(1, #start) == start then
        kind = name
        break
      end
    end
    if kind == "error" then
      kind = "error:" .. (body:match('"code":"([%w_]+)"') or "?")
    end
  end
  local key = status .. " " .. kind
  counts[key] = (counts[key] or 0) + 1
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("LOAD summary requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("LOAD latency_us mean=%.0f stdev=%.0f min=%d max=%d p50=%d p90=%d p99=%d p999=%d\n",
    latency.mean, latency.stdev, latency.min, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
  local total = {}
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("counts")) do
      total[key] = (total[key] or 0) + n
    end
  end
  for key, n in pairs(total) do
    io.write(string.format("LOAD responses %s %d\n", key, n))
  end
end
