"""Both ends of an exchange: the client side (``client.Exchanger``: check, build, sign, send,
verify) and the provider side (``provider``: one worker per hosted service)."""
