import { formatRef } from '../../lineage';
import { html, link, page, url } from './html';
import { workflowLink, type UiContext } from './ui-context';

/** `/ui/registries`: every registry of the org. */
export async function registriesPage(context: UiContext): Promise<string> {
  const registries = await context.store.registry.list(context.org);
  return page(
    { title: 'Registries', section: 'registries' },
    html`<p class="muted">
        Org <code>${context.org}</code>. Each registry holds collections of linked versions; aliases move by
        compare-and-set.
      </p>
      <table class="sortable" id="registries">
        <thead>
          <tr>
            <th>registry</th>
            <th>accepts types</th>
            <th>description</th>
            <th>created</th>
          </tr>
        </thead>
        <tbody>
          ${registries.map(
            (registry) =>
              html`<tr>
                <td>${link(`/ui/registries/${encodeURIComponent(registry.name)}`, registry.name)}</td>
                <td>${registry.artifactTypes.join(', ') || 'any'}</td>
                <td>${registry.description ?? ''}</td>
                <td>${registry.createdAt}</td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${registries.length === 0 ? html`<p class="empty">No registries yet: a pipeline run creates them when it registers a model.</p>` : ''}`,
  );
}

/** `/ui/registries/<registry>`: its collections with their aliases. */
export async function registryPage(context: UiContext, name: string): Promise<string> {
  const shown = await context.store.registry.show(name, context.org);
  return page(
    { title: `Registry ${shown.registry.name}`, section: 'registries' },
    html`<p class="crumbs">${link('/ui/registries', 'Registries')} / ${shown.registry.name}</p>
      <p class="muted">
        Accepts ${shown.registry.artifactTypes.join(', ') || 'any type'}. ${shown.registry.description ?? ''}
      </p>
      <table class="sortable" id="collections">
        <thead>
          <tr>
            <th>collection</th>
            <th>type</th>
            <th>versions</th>
            <th>aliases</th>
          </tr>
        </thead>
        <tbody>
          ${shown.collections.map(
            (collection) =>
              html`<tr>
                <td>
                  ${link(`/ui/registries/${encodeURIComponent(shown.registry.name)}/${encodeURIComponent(collection.name)}`, collection.name)}
                </td>
                <td>${collection.type}</td>
                <td class="number">${collection.versionCount}</td>
                <td>${collection.aliases.map((alias) => html`<span class="alias">${alias}</span> `)}</td>
              </tr>`,
          )}
        </tbody>
      </table>`,
  );
}

/** `/ui/registries/<registry>/<collection>`: versions with aliases, and every alias move (from → to, actor, workflow). */
export async function collectionPage(
  context: UiContext,
  registryName: string,
  collectionName: string,
): Promise<string> {
  const collectionRef = formatRef({
    kind: 'registry',
    org: context.org,
    registry: registryName,
    collection: collectionName,
  });
  const versions = await context.store.registry.versions(collectionRef);
  const history = await context.store.registry.aliasHistory(collectionRef);
  const lineageLink = (ref: string, text: string = ref) =>
    link(url('/ui/lineage', { ref }), html`<code>${text}</code>`);
  return page(
    { title: `${registryName} / ${collectionName}`, section: 'registries' },
    html`<p class="crumbs">
        ${link('/ui/registries', 'Registries')} /
        ${link(`/ui/registries/${encodeURIComponent(registryName)}`, registryName)} / ${collectionName}
      </p>
      <h2>Versions</h2>
      <table class="sortable" id="versions">
        <thead>
          <tr>
            <th>version</th>
            <th>aliases</th>
            <th>artifact</th>
            <th>linked</th>
            <th>by</th>
            <th>workflow</th>
          </tr>
        </thead>
        <tbody>
          ${versions.map(
            (version) =>
              html`<tr data-version="v${version.version}">
                <td>${lineageLink(version.ref, `v${version.version}`)}</td>
                <td>${version.aliases.map((alias) => html`<span class="alias">${alias}</span> `)}</td>
                <td>${lineageLink(version.artifact.ref)}</td>
                <td>${version.linkedAt}</td>
                <td>${version.linkedBy ?? ''}</td>
                <td>${workflowLink(context, version.workflowId)}</td>
              </tr>`,
          )}
        </tbody>
      </table>
      <h2>Alias moves</h2>
      <table class="sortable" id="alias-moves">
        <thead>
          <tr>
            <th>alias</th>
            <th>from</th>
            <th>to</th>
            <th>actor</th>
            <th>workflow</th>
            <th>when</th>
          </tr>
        </thead>
        <tbody>
          ${history.map(
            (move) =>
              html`<tr>
                <td><span class="alias">${move.alias}</span></td>
                <td>${move.fromVersion === null ? '—' : `v${move.fromVersion}`}</td>
                <td>${move.toVersion === null ? '—' : `v${move.toVersion}`}</td>
                <td>${move.actor ?? ''}</td>
                <td>${workflowLink(context, move.workflowId)}</td>
                <td>${move.movedAt}</td>
              </tr>`,
          )}
        </tbody>
      </table>`,
  );
}
