// weft web UI: sort any `table.sortable` by a header click, and filter the per-row table as you type.
// Plain browser JavaScript served as is (no build step); pages work without it.
'use strict';

function cellValue(row, column) {
  const cell = row.cells[column];
  if (!cell) return '';
  const text = cell.textContent.trim();
  const number = Number(text.replace(/^[+−]/, (sign) => (sign === '−' ? '-' : '')).split(' ')[0]);
  return text !== '' && Number.isFinite(number) ? number : text.toLowerCase();
}

function sortTable(table, column, header) {
  const body = table.tBodies[0];
  if (!body) return;
  const ascending = header.getAttribute('aria-sort') !== 'ascending';
  for (const other of table.tHead.rows[0].cells) other.setAttribute('aria-sort', 'none');
  header.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
  const rows = Array.from(body.rows);
  rows.sort((left, right) => {
    const a = cellValue(left, column);
    const b = cellValue(right, column);
    const order = typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b));
    return ascending ? order : -order;
  });
  body.append(...rows);
}

function enableSorting(table) {
  if (!table.tHead) return;
  Array.from(table.tHead.rows[0].cells).forEach((header, column) => {
    header.setAttribute('aria-sort', 'none');
    header.addEventListener('click', () => sortTable(table, column, header));
  });
}

function enableRowFilter(input, table) {
  input.addEventListener('input', () => {
    const needle = input.value.trim().toLowerCase();
    for (const row of table.tBodies[0].rows) {
      row.hidden = needle !== '' && !row.textContent.toLowerCase().includes(needle);
    }
  });
}

document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('table.sortable').forEach(enableSorting);
  const filter = document.getElementById('row-filter');
  const rows = document.getElementById('rows');
  if (filter && rows) enableRowFilter(filter, rows);
});
