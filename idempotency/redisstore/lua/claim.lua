-- Claim. KEYS[1]: the record. ARGV: owner, fingerprint, lease (ms).
-- Returns {} after claiming, or the live record (see read) unchanged.
local rec = read(KEYS[1])
if rec then
  return rec
end
redis.call('HSET', KEYS[1], 'state', 'in_progress', 'owner', ARGV[1], 'fingerprint', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {}
