-- Get. KEYS[1]: the record. Returns the live record (see read), or {}.
return read(KEYS[1]) or {}
