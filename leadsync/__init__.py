"""leadsync: pull contacts and engagement from HubSpot, Mailchimp and ActiveCampaign, score every
person, and write the scores back where sales people see them.

One import namespace over the project's folders (pyproject.toml maps them with setuptools'
``package-dir``): ``leadsync.config`` is config/, ``leadsync.connectors`` is connectors/,
``leadsync.scoring`` is scoring/, ``leadsync.sync`` is sync/ and ``leadsync.sandbox`` is sandbox/.
"""

from importlib import metadata

try:
    __version__ = metadata.version("leadsync")
except metadata.PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
