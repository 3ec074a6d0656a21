"""Tests of the adapter kinds against real local agency stand-ins."""
