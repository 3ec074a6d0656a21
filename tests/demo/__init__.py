"""Tests of the demo agency stand-ins."""
