-- Renew: Extend without record.lua's helpers, for ExtendMany, which runs
-- it for thousands of claims a round. KEYS[1]: the record. ARGV: owner,
-- lease (ms). Returns held's code (see record.lua), extending the lease
-- if it is 1.
local r = redis.call('HMGET', KEYS[1], 'state', 'owner')
if not r[1] then
  return 0
end
if r[1] ~= 'in_progress' then
  return -2
end
if r[2] ~= ARGV[1] then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
