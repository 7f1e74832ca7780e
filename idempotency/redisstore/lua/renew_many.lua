-- RenewMany: Extend of many claims in one script, for ExtendMany over a
-- client of one server (not Cluster, whose scripts must keep to one
-- slot). KEYS: the records; ARGV: their owners, in the same order, then
-- the lease (ms). Returns held's code (see record.lua) for each, having
-- extended the leases whose code is 1.
local lease = ARGV[#ARGV]
local out = {}
for i, rec in ipairs(KEYS) do
  local r = redis.call('HMGET', rec, 'state', 'owner')
  local h = 1
  if not r[1] then
    h = 0
  elseif r[1] ~= 'in_progress' then
    h = -2
  elseif r[2] ~= ARGV[i] then
    h = -1
  else
    redis.call('PEXPIRE', rec, lease)
  end
  out[i] = h
end
return out
