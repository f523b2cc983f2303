"""Designations: geographical indications, collective and certification trademarks; the right to
use them; lots' claims to them. ``models`` holds the tables; see the other modules for the rules."""
