-- Argo CD health of a modelyard.io ModelEntry (cluster-scoped), from the phase the operator
-- writes (operator/modelyard/controllers/model_entry.py). Lua 5.1 (gopher-lua); see docs/gitops/README.md.
-- Argo CD runs health scripts without the string and math libraries: none used here.
local hs = {}
local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to resolve the entry"
  return hs
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
if status.phase == "Valid" then
  hs.status = "Healthy"
  local what = {}
  if status.category ~= nil then table.insert(what, status.category) end
  if status.architecture ~= nil then table.insert(what, status.architecture) end
  hs.message = "Valid: served as " .. tostring(status.servedName or obj.metadata.name)
  if #what > 0 then
    hs.message = hs.message .. " (" .. table.concat(what, ", ") .. ")"
  end
  local endpoints = status.endpoints or {}
  if #endpoints > 0 then
    local ready = 0
    for _, endpoint in ipairs(endpoints) do
      if endpoint.ready then ready = ready + 1 end
    end
    hs.message = hs.message .. "; " .. tostring(ready) .. "/" .. tostring(#endpoints) .. " endpoints ready"
  end
  if obj.spec ~= nil and obj.spec.lifecycle == "deprecated" then
    hs.message = hs.message .. "; deprecated"
  end
elseif status.phase == "Invalid" then
  hs.status = "Degraded"
  hs.message = "Invalid: " .. tostring(status.reason or "the registry cannot resolve this entry")
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(status.phase)
end
return hs
