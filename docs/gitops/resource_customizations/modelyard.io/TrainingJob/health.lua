-- Argo CD health of a modelyard.io TrainingJob, from the phase, reason and progress the operator
-- writes (operator/modelyard/builders/training.py job_phase, controllers/training_job.py).
-- Lua 5.1 (gopher-lua); see docs/gitops/README.md.
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
elseif string.sub(message, 1, string.len(reason)) ~= reason then
  message = reason .. ": " .. message
end
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Training finished"
  if status.registeredModel ~= nil then
    hs.message = hs.message .. "; registered ModelEntry " .. status.registeredModel
  end
elseif phase == "Running" then
  hs.status = "Progressing"
  local progress = status.progress
  if progress ~= nil and progress.step ~= nil and progress.totalSteps ~= nil then
    hs.message = "Running: step " .. tostring(progress.step) .. "/" .. tostring(progress.totalSteps)
    if progress.loss ~= nil then
      hs.message = hs.message .. ", loss " .. string.format("%.4g", progress.loss)
    end
    if progress.etaSeconds ~= nil then
      hs.message = hs.message .. ", ETA " .. tostring(progress.etaSeconds) .. " s"
    end
  else
    hs.message = message
  end
elseif phase == "Pending" then
  hs.message = message
  if reason == "Unschedulable" then
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
