"""The model registry: catalog formats, architecture detection, requirement estimates and
training / inference validation. Pure: it reads files and dicts, never the cluster."""
