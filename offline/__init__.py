"""The offline world: the moto-based AWS sandbox, a local Slack stand-in, the rehearsal
world and the demo scenarios. Test and rehearsal tooling, not the product's runtime
(``amibot demo`` and ``amibot serve --sandbox`` import it on demand)."""
