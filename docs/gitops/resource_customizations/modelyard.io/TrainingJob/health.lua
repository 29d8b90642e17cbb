-- Argo CD health of a modelyard.io TrainingJob, from the phase, reason and progress the operator
-- writes (operator/modelyard/builders/training_status.py job_phase, controllers/training_job.py).
-- Lua 5.1 (gopher-lua); see docs/gitops/README.md.
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
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Training finished"
  if status.registeredModel ~= nil then
    hs.message = hs.message .. "; registered ModelEntry " .. status.registeredModel
  elseif reason ~= "Completed" then
    -- RegistrationConflict, RegistrationRefused: trained, but nothing registered
    hs.message = hs.message .. "; " .. message
  end
elseif phase == "Running" then
  hs.status = "Progressing"
  local progress = status.progress
  if progress ~= nil and progress.step ~= nil and progress.totalSteps ~= nil then
    hs.message = "Running: step " .. tostring(progress.step) .. "/" .. tostring(progress.totalSteps)
    if progress.loss ~= nil then
      -- Three decimals, built from whole numbers only: no string.format here, and gopher-lua
      -- prints a fractional number in full (1.2349999999999999).
      local thousandths = progress.loss * 1000 + 0.5
      thousandths = thousandths - thousandths % 1
      local frac = thousandths % 1000
      local pad = ""
      if frac < 10 then pad = "00" elseif frac < 100 then pad = "0" end
      hs.message = hs.message .. ", loss " .. tostring((thousandths - frac) / 1000) .. "." .. pad .. tostring(frac)
    end
    if progress.etaSeconds ~= nil then
      hs.message = hs.message .. ", ETA " .. tostring(progress.etaSeconds) .. " s"
    end
  else
    hs.message = message
  end
elseif phase == "Pending" then
  hs.message = message
  if reason == "Unschedulable" or reason == "OwnershipConflict" then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase) .. ": " .. message
end
return hs
