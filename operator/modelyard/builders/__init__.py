"""Pure desired-state functions: ModelEndpoint -> Deployment + Service, TrainingJob -> Job.

No I/O, no clock; sorted env and args so output is deterministic. The controllers feed them
parsed resources and apply what they return. This package imports only ``modelyard.api``.
"""
