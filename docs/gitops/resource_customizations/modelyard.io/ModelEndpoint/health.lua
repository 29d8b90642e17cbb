-- Argo CD health of a modelyard.io ModelEndpoint, from the phase and reason the operator writes
-- (operator/modelyard/builders/endpoint_status.py). Lua 5.1 (gopher-lua); see docs/gitops/README.md.
-- Argo CD runs health scripts without the string and math libraries (only base, table and a
-- safe os), so no string.* or math.* here.
local function startswith(text, prefix)
  return text >= prefix and text < prefix .. "\255"
end
local hs = {}
local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a status"
  return hs
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local phase = status.phase
local reason = status.reason or phase
local message = status.message or ""
if message == "" then
  message = reason
elseif not startswith(message, reason) then
  message = reason .. ": " .. message
end
-- The replica count, unless the message is that count already (Available, Starting).
if status.ready ~= nil and status.ready ~= "0/0" and phase ~= "Ready" and phase ~= "Progressing" then
  message = message .. " (ready " .. status.ready .. ")"
end
hs.message = message
if phase == "Ready" then
  hs.status = "Healthy"
elseif phase == "Progressing" then
  hs.status = "Progressing"
elseif phase == "Pending" then
  if reason == "ScaledToZero" then
    hs.status = "Suspended"
  elseif reason == "Unschedulable" or reason == "UpstreamUnreachable" or reason == "OwnershipConflict" then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
elseif phase == "Degraded" or phase == "Failed" then
  hs.status = "Degraded"
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase) .. ": " .. message
end
return hs
