// report.html's behaviour: the status filter, the search box, sorting and the dialog.
// The rows and the dialog's labels come from the JSON block #report-data; every value of a
// row is shown as text (textContent), never as markup or as a link.
"use strict";
var REPORT=null;
function report(){
  if(REPORT===null){REPORT=JSON.parse(document.getElementById('report-data').textContent);}
  return REPORT;
}
function cards(){return Array.prototype.slice.call(document.querySelectorAll('.card'));}
function applyFilter(){
  var status=document.getElementById('status').value;
  var text=document.getElementById('search').value.trim().toLowerCase();
  var shown=0;
  cards().forEach(function(card){
    var ok=(status==='all'||card.dataset.status===status)&&
      (text===''||card.dataset.search.indexOf(text)>=0);
    card.hidden=!ok; if(ok){shown++;}
  });
  document.getElementById('shown').textContent=shown;
}
function applySort(){
  var how=document.getElementById('sort').value;
  var key={line:'line',time:'duration',size:'bytes'}[how.split('-')[0]];
  var sign=how.endsWith('-desc')?-1:1;
  var grid=document.querySelector('.grid');
  cards().sort(function(a,b){
    var x=Number(a.dataset[key]||-1), y=Number(b.dataset[key]||-1);
    return sign*(x-y)||(Number(a.dataset.line)-Number(b.dataset.line));
  }).forEach(function(card){grid.appendChild(card);});
}
function show(card){
  var row=report().rows[Number(card.dataset.index)];
  var dialog=document.getElementById('viewer');
  var img=document.getElementById('viewer-img');
  var link=document.getElementById('viewer-link');
  if(card.dataset.src){img.src=card.dataset.src;img.hidden=false;link.href=card.dataset.src;
    link.hidden=false;}
  else{img.removeAttribute('src');img.hidden=true;link.removeAttribute('href');link.hidden=true;}
  document.getElementById('viewer-title').textContent=row.url;
  var list=document.getElementById('viewer-meta'); list.textContent='';
  report().labels.forEach(function(pair){
    var value=row[pair[0]];
    if(value===null||value===undefined||value===''||(Array.isArray(value)&&!value.length)){return;}
    var dt=document.createElement('dt'); dt.textContent=pair[1];
    var dd=document.createElement('dd'); dd.dataset.field=pair[0];
    if(Array.isArray(value)){var pre=document.createElement('pre');
      pre.textContent=value.join('\n'); dd.appendChild(pre);}
    else {dd.textContent=String(value);}
    list.appendChild(dt); list.appendChild(dd);
  });
  dialog.showModal();
}
document.addEventListener('click',function(event){
  var card=event.target.closest&&event.target.closest('.card .thumb');
  if(card){event.preventDefault();show(card.closest('.card'));}
});
