"""Scheduled follow-ups: campaign rules turned into rows, and the runner that claims them.

- :mod:`bot.followups.schedule` writes follow-up rows where events happen (a report
  is created, a volunteer signs up), in the caller's transaction, and moves or
  cancels them when their subject changes.
- :mod:`bot.followups.facts` reads what a rule may know about its subject.
- :mod:`bot.followups.runner` claims due rows, applies the rule and queues the
  resulting messages in the outbox.

This package imports nothing eagerly: use cases import the scheduling functions and
the runner imports the handlers' callback prefixes, so an eager import here would
be circular.
"""
