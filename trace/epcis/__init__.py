"""GS1 EPCIS 2.0: our events as JSON-LD documents (export, query) and documents of others (capture).

Event identity is the CBV 2.0 event hash id, kept beside each event in ``epcis_event_id``.
"""
