"""Celery app and tasks: thin glue that calls trace/ and labels/."""
