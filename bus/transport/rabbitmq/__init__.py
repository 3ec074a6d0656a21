"""The RabbitMQ transport (pika): the transport, its publisher with confirms, its consumers and
the broker topology it declares."""
