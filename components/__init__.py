"""Pulumi ComponentResources of the CloudEvents connectors."""
