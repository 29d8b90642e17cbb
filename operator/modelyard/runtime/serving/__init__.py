"""The runtime's HTTP layer: ``app.create_app(settings, models)`` and one module per route family.

Routes are thin (parse, look up the model, call the serving logic, shape the answer);
:mod:`generation` holds the text-generation logic shared by chat and completions.
"""
