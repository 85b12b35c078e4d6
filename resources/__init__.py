"""HTTP resources: one module per resource, thin responders over the stores."""
