"""JSON Schemas bundled with `routing`, installed as the data package `routing.schemas_data`.

Not code: this file only makes the folder importable, so `importlib.resources` finds the
schemas in editable installs and in wheels alike. `<type>.schema.json` is the schema of an
event type's `data`; `envelope.schema.json` is the CloudEvents envelope itself.
"""
