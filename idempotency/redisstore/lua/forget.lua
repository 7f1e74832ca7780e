-- Forget. KEYS[1]: the record. Deletes it if it is completed; returns 1 if
-- it did, 0 otherwise (no live record, or an in-progress claim, which is
-- left alone).
if redis.call('HGET', KEYS[1], 'state') == 'completed' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
